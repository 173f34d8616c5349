#!/bin/sh
# Copies the small /proc, /sys and /etc text files the node receiver reads into a testdata tree,
# so a machine's real files can be checked in as a golden test case.
#   usage: capture.sh <tree directory>
set -eu
out=${1:?usage: capture.sh <tree directory>}
copy() {
    [ -r "$1" ] || return 0
    mkdir -p "$out$(dirname "$1")"
    cat "$1" > "$out$1" 2>/dev/null || rm -f "$out$1"
}
for f in stat meminfo loadavg diskstats vmstat 1/mountinfo \
    net/dev net/netstat net/snmp net/snmp6 net/sockstat net/sockstat6 \
    net/softnet_stat net/stat/nf_conntrack net/udp net/udp6 net/arp \
    sys/net/netfilter/nf_conntrack_count sys/net/netfilter/nf_conntrack_max \
    sys/fs/file-nr sys/kernel/random/entropy_avail sys/kernel/random/poolsize \
    sys/kernel/ostype sys/kernel/hostname sys/kernel/osrelease sys/kernel/version sys/kernel/domainname \
    pressure/cpu pressure/io pressure/memory pressure/irq; do
    copy "/proc/$f"
done
copy /etc/os-release
for d in /sys/devices/system/clocksource/clocksource*; do
    copy "$d/available_clocksource"
    copy "$d/current_clocksource"
done
for d in /sys/class/net/*; do
    copy "$d/statistics/rx_nohandler"
    for f in addr_assign_type address broadcast carrier carrier_changes carrier_down_count \
        carrier_up_count dev_id dormant duplex flags ifalias ifindex iflink link_mode mtu \
        name_assign_type netdev_group operstate speed tx_queue_len type; do
        copy "$d/$f"
    done
done
copy /sys/fs/selinux/enforce
for d in /sys/block/*; do
    copy "$d/queue/rotational"
done
for f in /sys/class/infiniband/*/ports/*/hw_counters/*; do
    copy "$f"
done
for f in /run/udev/data/b*; do
    copy "$f"
done
