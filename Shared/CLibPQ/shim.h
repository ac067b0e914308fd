#ifndef PLATFORM_CLIBPQ_SHIM_H
#define PLATFORM_CLIBPQ_SHIM_H
#include <libpq-fe.h>
#endif
