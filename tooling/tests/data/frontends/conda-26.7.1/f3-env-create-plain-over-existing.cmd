conda env create -f /tmp/h4\ real/environment\ plain.yml 
