#!/bin/bash
# Scratch (not committed): capture real conda 26.7.1 outputs. Usage: capture.sh OUTDIR
set -u
S="/tmp/h4 real"; OUT="$1"; mkdir -p "$OUT"
export PATH="$S/bin:$PATH"
CH="$S/chan nel/channel"
CHURI=$(python3 -c 'import pathlib,sys;print(pathlib.Path(sys.argv[1]).as_uri())' "$CH")
ROOT="$S/root dir"; ENVS="$ROOT/envs"
cap() { # cap NAME cmd... : stdout, stderr and exit code of one command
  local name=$1; shift
  printf '%q ' "$@" > "$OUT/$name.cmd"; echo >> "$OUT/$name.cmd"
  "$@" > "$OUT/$name.stdout" 2> "$OUT/$name.stderr"; echo $? > "$OUT/$name.rc"
  echo "== $name rc=$(cat "$OUT/$name.rc")"
}
# fresh state
rm -rf "$ROOT" "$S/home" "$S/x y" "$S/g dir" "$S/h dir"; mkdir -p "$ROOT/conda-meta" "$S/home"
echo "CHURI=$CHURI"
# a. base, a named env, a -p env named like it, a backup folder holding conda-meta
cap a-create-named conda create --yes --quiet -n lockstep --override-channels -c "$CHURI" cuda-version=12.6
cap a-create-p conda create --yes --quiet -p "$S/x y/other/lockstep" --override-channels -c "$CHURI" cuda-version=12.6
cap a-create-named2 conda create --yes --quiet -n lockstep.lockstep-backup --override-channels -c "$CHURI" cuda-version=12.6
# the backup as reproduce makes it: a moved env (not registered)
rm -rf "$ENVS/lockstep.lockstep-backup"; cp -a "$ENVS/lockstep" "$ENVS/lockstep.lockstep-backup"
mkdir -p "$ENVS/not-an-env"   # a folder without conda-meta
cap a-env-list-json conda env list --json
cap c-env-list conda env list
cap b-info-json conda info --json
cap b-info-envs conda info --envs
# which folders in an envs dir count as envs: conda-meta alone, or conda-meta/history
mkdir -p "$ENVS/meta-only/conda-meta" "$ENVS/history-only/conda-meta"; : > "$ENVS/history-only/conda-meta/history"
cap a2-env-list-json conda env list --json
rm -rf "$ENVS/meta-only" "$ENVS/history-only" "$ENVS/not-an-env"
# a registered -p env that was deleted is dropped from the listing
cap a3-create-gone conda create --yes --quiet -p "$S/x y/gone" --override-channels -c "$CHURI" cuda-version=12.6
rm -rf "$S/x y/gone"
cap a3-env-list-json conda env list --json

# d. create --yes over an existing prefix
cap d-lock conda list --explicit --md5 -p "$S/x y/other/lockstep"
cp "$OUT/d-lock.stdout" "$S/the lock.txt"
echo marker > "$S/x y/other/lockstep/MARKER"
cap d1-create-file-over-existing conda create --yes -p "$S/x y/other/lockstep" --file "$S/the lock.txt"
ls -A "$S/x y/other/lockstep" > "$OUT/d1-after.ls"
# the same, when the archive cannot be fetched: is the old prefix gone before the fetch fails?
echo marker > "$S/x y/other/lockstep/MARKER"
mv "$CH/noarch/cuda-version-12.6-h0_0.tar.bz2" "$S/held.tar.bz2"
rm -rf "$ROOT/pkgs"; cap d2-create-file-fetch-fails conda create --yes -p "$S/x y/other/lockstep" --file "$S/the lock.txt"
mv "$S/held.tar.bz2" "$CH/noarch/cuda-version-12.6-h0_0.tar.bz2"
{ test -e "$S/x y/other/lockstep" && ls -A "$S/x y/other/lockstep"; } > "$OUT/d2-after.ls" 2>&1; echo "exists=$?" >> "$OUT/d2-after.ls"
# create -n X with a spec that cannot be solved, X existing
echo marker > "$ENVS/lockstep/MARKER"
cap d3-create-unsat-over-existing conda create --yes -n lockstep --override-channels -c "$CHURI" cuda-version=99
{ test -e "$ENVS/lockstep" && ls -A "$ENVS/lockstep"; } > "$OUT/d3-after.ls" 2>&1; echo "exists=$?" >> "$OUT/d3-after.ls"
cap d4-create-named conda create --yes --quiet -n lockstep --override-channels -c "$CHURI" cuda-version=12.6

# e. dry runs
cap e1-dry-run-ok conda create --dry-run --json -n drytest --override-channels -c "$CHURI" libcudart cuda-version=12.6
cap e2-dry-run-unsat conda create --dry-run --json -n drytest --override-channels -c "$CHURI" cuda-version=99
cap e3-dry-run-missing conda create --dry-run --json -n drytest --override-channels -c "$CHURI" no-such-package
cap e4-dry-run-existing conda create --dry-run --json -n lockstep --override-channels -c "$CHURI" cuda-version=12.6
cap e5-dry-run-ok-text conda create --dry-run -n drytest --override-channels -c "$CHURI" libcudart cuda-version=12.6

# f. env create with nodefaults
printf 'name: envf\nchannels:\n  - %s\n  - nodefaults\ndependencies:\n  - cuda-version=12.6\n' "$CHURI" > "$S/environment nodefaults.yml"
printf 'name: envf\nchannels:\n  - %s\ndependencies:\n  - cuda-version=12.6\nvariables:\n  PYTHONNOUSERSITE: "1"\n' "$CHURI" > "$S/environment plain.yml"
cp "$S/environment nodefaults.yml" "$OUT/f-environment-nodefaults.yml"; cp "$S/environment plain.yml" "$OUT/f-environment-plain.yml"
cap f1-env-create-nodefaults conda env create -f "$S/environment nodefaults.yml"
cap f2-create-override conda create --yes -n envf --override-channels -c "$CHURI" cuda-version=12.6
echo marker > "$ENVS/envf/MARKER"
cap f3-env-create-plain-over-existing conda env create -f "$S/environment plain.yml"
{ ls -A "$ENVS/envf"; cat "$ENVS/envf/conda-meta/state"; } > "$OUT/f3-after.ls" 2>&1
cap f4-env-create-plain-yes conda env create --yes -f "$S/environment plain.yml"

# g. a file:// archive altered after indexing
T="$S/tamper chan"; rm -rf "$T"; cp -a "$CH" "$T"
TURI=$(python3 -c 'import pathlib,sys;print(pathlib.Path(sys.argv[1]).as_uri())' "$T")
rm -rf "$ROOT/pkgs"; cap g0-create conda create --yes --quiet -p "$S/g dir/env" --override-channels -c "$TURI" cuda-version=12.6
cap g0-lock conda list --explicit --md5 -p "$S/g dir/env"
cp "$OUT/g0-lock.stdout" "$S/g lock.txt"
ARCH="$T/noarch/cuda-version-12.6-h0_0.tar.bz2"
md5sum "$ARCH" > "$OUT/g-archive-md5-before.txt"
python3 - "$ARCH" <<'PY'
import sys; p=sys.argv[1]; b=bytearray(open(p,'rb').read()); i=len(b)//2; b[i]^=0xFF; open(p,'wb').write(b)
PY
md5sum "$ARCH" > "$OUT/g1-archive-md5-after.txt"; stat -c %s "$ARCH" >> "$OUT/g1-archive-md5-after.txt"
rm -rf "$ROOT/pkgs"; cap g1-create-same-size conda create --yes -p "$S/g dir/env1" --file "$S/g lock.txt"
grep -h '"md5"\|"url"' "$S/g dir/env1/conda-meta/"cuda-version*.json > "$OUT/g1-conda-meta-md5.txt" 2>&1
# different size: a valid archive with other content under the same name
python3 - "$ARCH" "$CH/noarch/cuda-version-12.6-h0_0.tar.bz2" <<'PY'
import sys, tarfile, io
src, dst = sys.argv[2], sys.argv[1]
with tarfile.open(src) as t, tarfile.open(dst, "w:bz2") as o:
    for m in t.getmembers():
        o.addfile(m, t.extractfile(m) if m.isfile() else None)
    extra = b"tampered payload\n"; info = tarfile.TarInfo("etc/tampered.txt"); info.size = len(extra)
    o.addfile(info, io.BytesIO(extra))
PY
md5sum "$ARCH" > "$OUT/g2-archive-md5-after.txt"; stat -c %s "$ARCH" >> "$OUT/g2-archive-md5-after.txt"
rm -rf "$ROOT/pkgs"; cap g2-create-other-size conda create --yes -p "$S/g dir/env2" --file "$S/g lock.txt"
grep -h '"md5"\|"url"' "$S/g dir/env2/conda-meta/"cuda-version*.json > "$OUT/g2-conda-meta-md5.txt" 2>&1
ls -R "$S/g dir/env2" > "$OUT/g2-after.ls" 2>&1

cap i-create-p-space-in-basename conda create --yes --quiet -p "$S/x y/a b" --override-channels -c "$CHURI" cuda-version=12.6
cap i-create-n-reserved conda create --yes --quiet -n base --override-channels -c "$CHURI" cuda-version=12.6
# h. conda-meta of a package with a prefix placeholder
cap h-create conda create --yes --quiet -p "$S/h dir/env" --override-channels -c "$CHURI" withprefix
cp "$S/h dir/env/conda-meta/withprefix-1.0-h0_0.json" "$OUT/h-conda-meta-withprefix.json"
cp "$S/h dir/env/share/demo/config.txt" "$OUT/h-installed-config.txt"
ls -A "$S/h dir/env/conda-meta" > "$OUT/h-conda-meta.ls"
# a real conflict (both packages exist, they cannot go together)
cap e6-dry-run-conflict conda create --dry-run --json -n drytest --override-channels -c "$CHURI" libcudart=12.9 cuda-version=12.6
