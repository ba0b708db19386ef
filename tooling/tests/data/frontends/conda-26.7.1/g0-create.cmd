conda create --yes --quiet -p /tmp/h4\ real/g\ dir/env --override-channels -c file:///tmp/h4%20real/tamper%20chan cuda-version=12.6 
