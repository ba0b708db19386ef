conda create --yes --quiet -p /tmp/h4\ real/h\ dir/env --override-channels -c file:///tmp/h4%20real/chan%20nel/channel withprefix 
