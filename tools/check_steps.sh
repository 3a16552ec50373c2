# shellcheck shell=bash
# Sourced by tools/gpu_check.sh and tools/cpu_check.sh: steps with hard
# timeouts inside a time budget, and the summary table they end with.
#
# The caller sets, before sourcing: MODE (`bundle` builds without a budget),
# BUDGET (seconds for the whole run), LOG (folder for the step logs) and
# STEP_WIDTH (width of the summary's step column).

START=$SECONDS
SUMMARY=()
FAILURES=0

say() { printf '== %s\n' "$*"; }

# record STEP STATUS DETAIL: one row of the summary (STATUS: ok, SKIPPED,
# WARN or FAIL), printed now and kept for the end.
record() {
    SUMMARY+=("$(printf "%-${STEP_WIDTH}s %-8s %s" "$1" "$2" "$3")")
    printf -- "-> %-$((STEP_WIDTH - 2))s %-8s %s\n" "$1" "$2" "$3"
    [ "$2" = FAIL ] && FAILURES=$((FAILURES + 1))
    return 0
}

# print_summary: the table of every recorded step.
print_summary() {
    printf "%-${STEP_WIDTH}s %-8s %s\n" "step" "result" "detail"
    printf '%s\n' "${SUMMARY[@]}"
}

# allow CAP: seconds a step may take, its own cap within what is left of the
# budget (building a bundle has none: a cold release build takes minutes).
allow() {
    [ "$MODE" = bundle ] && { echo 3600; return; }
    local cap=$1 left=$((BUDGET - (SECONDS - START) - 5))
    [ "$left" -lt "$cap" ] && cap=$left
    echo "$cap"
}

# run_step SECONDS LOGNAME CMD...: runs CMD with a hard timeout, output to
# $LOG/LOGNAME.log and the terminal; returns its status (124: timed out,
# 125: no time left in the budget).
run_step() {
    local t=$1 name=$2; shift 2
    if [ "$t" -lt 5 ]; then
        echo "out of time budget" | tee "$LOG/$name.log"
        return 125
    fi
    timeout --kill-after=5 "$t" "$@" 2>&1 | tee "$LOG/$name.log"
    return "${PIPESTATUS[0]}"
}
