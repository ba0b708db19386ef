conda info --json 
