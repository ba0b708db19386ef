conda env create -f /tmp/h4\ real/environment\ nodefaults.yml 
