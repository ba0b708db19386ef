conda create --yes --quiet -n lockstep --override-channels -c file:///tmp/h4%20real/chan%20nel/channel cuda-version=12.6 
