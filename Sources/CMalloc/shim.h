#ifndef KEYROTD_CMALLOC_H
#define KEYROTD_CMALLOC_H

// glibc's malloc_trim(3), which Swift's Glibc module does not export: the daemon
// hands freed heap pages back to the kernel when it goes quiet.
#include <malloc.h>

#endif
