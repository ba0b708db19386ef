conda create --yes -p /tmp/h4\ real/g\ dir/env1 --file /tmp/h4\ real/g\ lock.txt 
