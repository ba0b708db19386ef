conda env create --yes -f /tmp/h4\ real/environment\ plain.yml 
