conda create --dry-run --json -n lockstep --override-channels -c file:///tmp/h4%20real/chan%20nel/channel cuda-version=12.6 
