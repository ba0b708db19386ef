conda create --yes -p /tmp/h4\ real/g\ dir/env2 --file /tmp/h4\ real/g\ lock.txt 
