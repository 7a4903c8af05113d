// Fd and os_error moved to common/ with the shared HTTP server; vmm code names them unqualified,
// which finds them in the enclosing namespace `cloister`.
#pragma once

#include "cloister/common/fd.h"
