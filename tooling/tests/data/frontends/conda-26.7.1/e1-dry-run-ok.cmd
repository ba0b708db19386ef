conda create --dry-run --json -n drytest --override-channels -c file:///tmp/h4%20real/chan%20nel/channel libcudart cuda-version=12.6 
