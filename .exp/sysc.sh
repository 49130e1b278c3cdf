#!/bin/bash
# sysc.sh PATTERN SECONDS: syscall counts of the processes matching PATTERN (pgrep -f)
pids=$(pgrep -d, -f "$1")
ev=$(for s in writev write read readv epoll_wait epoll_pwait futex fdatasync fsync pwrite64 pread64 sendto recvfrom sendmsg recvmsg clock_gettime mprotect madvise; do printf "syscalls:sys_enter_%s," $s; done)
perf stat -e "${ev%,}" -p $pids sleep $2 2>&1 | grep syscalls | awk '$1 != "0" {print}'
