#ifndef KEYROTD_CSYSTEMD_H
#define KEYROTD_CSYSTEMD_H

// sd_journal_send is variadic and cannot be called from Swift: use sd_journal_sendv.
// Suppress the CODE_FILE/CODE_LINE macros, which would name this header.
#define SD_JOURNAL_SUPPRESS_LOCATION 1
#include <systemd/sd-daemon.h>
#include <systemd/sd-journal.h>

#endif
