# Shared by run.sh (the emulator) and run-real.sh (the real Cinder tier): the venv, the run of
# the selection, and the ratio passed / selected.
#
# Selected = every tempest.api.volume test, minus no-glance.txt (tests that need Glance, not
# counted), minus the tests tempest skips itself (Nova, features marked off). A test named in
# the skip list (when one is given) counts as selected and failing.
TEMPEST_MIN_PERCENT=${TEMPEST_MIN_PERCENT:-90}

# Makes (once) and prints the venv holding the pinned tempest.
tempest_venv() {
  local here=$1 venv="${TEMPEST_VENV:-/var/tmp/cinder-evs-csi-tempest}"
  if ! "$venv/bin/tempest" --version >/dev/null 2>&1; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q -r "$here/requirements.txt" -c "$here/../peer-clients/constraints.txt" >&2
  fi
  echo "$venv"
}

# tempest_run HERE VENV WORK SKIPLIST(or empty): runs the selection from WORK (which holds
# tempest.conf), prints one line a test and the totals, then the ratio; fails below the bar or
# when tempest failed.
tempest_run() {
  local here=$1 venv=$2 work=$3 skiplist=${4:-} status=0 site
  site=$("$venv/bin/python" -c 'import os, tempest; print(os.path.dirname(tempest.__path__[0]))')
  printf '[DEFAULT]\ntest_path=%s/tempest/test_discover\ntop_dir=%s/tempest\ngroup_regex=([^\\.]*\\.)*\n' \
    "$site" "$site" >"$work/.stestr.conf"
  cat "$here/no-glance.txt" ${skiplist:+"$skiplist"} >"$work/exclude.txt"
  (cd "$work" && "$venv/bin/stestr" init >/dev/null && "$venv/bin/stestr" list '^tempest\.api\.volume\.') >"$work/all-tests.txt"
  (cd "$work" && "$venv/bin/tempest" run --config-file "$work/tempest.conf" \
    --regex '^tempest\.api\.volume\.' --exclude-list "$work/exclude.txt" --concurrency 1) \
    >"$work/tempest.out" 2>&1 || status=$?
  grep -E "^\{[0-9]\} .* (ok|FAILED|SKIPPED)" "$work/tempest.out" | sed -E 's/^\{[0-9]\} //' || true
  sed -n '/^Totals/,/^Sum of/p' "$work/tempest.out"
  if [ "$status" != 0 ]; then
    grep -B2 -A40 "^Captured traceback" "$work/tempest.out" | head -400 >&2 || true
  fi
  "$venv/bin/python" - "$work/all-tests.txt" "$work/tempest.out" "$here/no-glance.txt" \
    "${skiplist:-/dev/null}" "$TEMPEST_MIN_PERCENT" <<'PY'
import re, sys
tests, out, no_glance, skip_list, bar = sys.argv[1:6]

def regexes(path):
    found = []
    for line in open(path):
        line = line.split("#", 1)[0].strip()
        if line:
            found.append(re.compile(line))
    return found

def matches(name, patterns):
    return any(p.search(name) for p in patterns)

# The listing names a test with its attributes (`test_x[id-...,smoke]`), the run without.
# The exclusion regexes see that full name, as tempest's --exclude-list does.
every = [t.strip() for t in open(tests) if t.strip().startswith("tempest.")]
short = {t: re.sub(r"\[.*\]$", "", t) for t in every}
outside, skipped = regexes(no_glance), regexes(skip_list)
result = {}
line = re.compile(r"^\{\d+\} (?:setUpClass \((\S+)\)|(\S+?)(?: \[[\d.]+s\])?) \.\.\. (ok|FAILED|SKIPPED)")
for text in open(out):
    m = line.match(text)
    if not m:
        continue
    klass, name, outcome = m.groups()
    if klass:  # a whole class set up, skipped or failed at once
        for t in every:
            if short[t].startswith(klass + ".") and short[t] not in result:
                result[short[t]] = outcome
    else:
        result[name] = outcome
selected = passed = 0
failing = []
for t in every:
    if matches(t, outside):
        continue
    outcome = result.get(short[t])
    if outcome == "SKIPPED":
        continue
    if outcome is None and not matches(t, skipped):
        outcome = "FAILED"  # excluded by nothing yet never reported: count it against us
    selected += 1
    if outcome == "ok":
        passed += 1
    else:
        failing.append(short[t])
for name in failing:
    print(f"  not passed: {name}")
percent = 100.0 * passed / selected if selected else 0.0
print(f"tempest ratio: {passed}/{selected} selected tests passed ({percent:.1f} %; bar {bar} %); "
      f"{len(failing)} failing or in the skip list")
sys.exit(0 if percent >= float(bar) else 1)
PY
  # A failure outside the skip list fails the tier even above the bar.
  return "$status"
}
