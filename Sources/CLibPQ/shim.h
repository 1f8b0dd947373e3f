#ifndef CRM_CLIBPQ_SHIM_H
#define CRM_CLIBPQ_SHIM_H
#include <libpq-fe.h>
#endif
