conda-meta
{
  "env_vars": {
    "PYTHONNOUSERSITE": "1"
  }
}