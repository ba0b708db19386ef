conda info --envs 
