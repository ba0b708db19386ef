conda list --explicit --md5 -p /tmp/h4\ real/g\ dir/env 
