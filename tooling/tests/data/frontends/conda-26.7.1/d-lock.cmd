conda list --explicit --md5 -p /tmp/h4\ real/x\ y/other/lockstep 
