conda env list --json 
