#!/bin/sh
# mk_nsenter.sh PID EXPORTS - variants A and B (Samba's documented steps): writes nsenter.sh
# next to EXPORTS, which enters PID's network and user namespaces keeping the caller's
# credentials, and prints its path.
set -eu
helper=${2%/*}/nsenter.sh
{
    echo "#!/bin/sh"
    echo "exec nsenter -t $1 --net --user --preserve-credentials ${0%/*}/nsenter-helper.sh $2"
} > "$helper"
chmod 755 "$helper"
echo "$helper"
