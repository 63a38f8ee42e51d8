#ifndef KEYROTD_CSYSTEMD_H
#define KEYROTD_CSYSTEMD_H

// sd_journal_send is variadic and cannot be called from Swift: use sd_journal_sendv.
// Suppress the CODE_FILE/CODE_LINE macros, which would name this header.
#define SD_JOURNAL_SUPPRESS_LOCATION 1
#include <systemd/sd-daemon.h>
#include <systemd/sd-journal.h>
#include <sys/prctl.h>

// prctl is variadic too. A non-dumpable process leaves no core with secrets in it
// and cannot be ptrace-attached by other processes of the same user.
static inline int keyrotd_set_not_dumpable(void) {
    return prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

#endif
