// Which libtorch we were built against: guards for calls that only 2.x has.
#pragma once
#include <torch/version.h>

#define TL_TORCH_AT_LEAST(major, minor) \
  (TORCH_VERSION_MAJOR > (major) || (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))
