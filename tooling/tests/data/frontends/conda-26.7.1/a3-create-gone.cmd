conda create --yes --quiet -p /tmp/h4\ real/x\ y/gone --override-channels -c file:///tmp/h4%20real/chan%20nel/channel cuda-version=12.6 
