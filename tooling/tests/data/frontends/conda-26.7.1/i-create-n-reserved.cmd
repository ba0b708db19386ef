conda create --yes --quiet -n base --override-channels -c file:///tmp/h4%20real/chan%20nel/channel cuda-version=12.6 
