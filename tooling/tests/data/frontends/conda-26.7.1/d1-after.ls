conda-meta
