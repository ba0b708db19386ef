conda create --yes --quiet -n lockstep.lockstep-backup --override-channels -c file:///tmp/h4%20real/chan%20nel/channel cuda-version=12.6 
