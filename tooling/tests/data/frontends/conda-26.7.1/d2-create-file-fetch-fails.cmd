conda create --yes -p /tmp/h4\ real/x\ y/other/lockstep --file /tmp/h4\ real/the\ lock.txt 
