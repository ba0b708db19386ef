conda env list 
