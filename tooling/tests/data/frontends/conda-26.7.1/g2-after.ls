/tmp/h4 real/g dir/env2:
conda-meta

/tmp/h4 real/g dir/env2/conda-meta:
created_at
cuda-version-12.6-h0_0.json
history
