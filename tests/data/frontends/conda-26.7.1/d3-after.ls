exists=1
