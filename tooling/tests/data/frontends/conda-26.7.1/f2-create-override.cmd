conda create --yes -n envf --override-channels -c file:///tmp/h4%20real/chan%20nel/channel cuda-version=12.6 
