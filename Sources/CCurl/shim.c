// The wrappers are static inline in CCurl.h; this file makes CCurl a C target.
#include "CCurl.h"
