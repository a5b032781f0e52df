#include "CXformShims.h"
