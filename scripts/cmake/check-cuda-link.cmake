# After the build against a CUDA libtorch: is libtorch_cuda among the addon's NEEDED libraries? Linkers
# with --as-needed drop a library that nothing calls by name, and without it every CUDA tensor fails at
# run time ("Could not run ... with arguments from the 'CUDA' backend") although the build said CUDA.
#   cmake -DADDON=<torch_lora.node> -DOBJDUMP=<objdump> -P check-cuda-link.cmake
execute_process(COMMAND ${OBJDUMP} -p ${ADDON} OUTPUT_VARIABLE _dyn RESULT_VARIABLE _rc ERROR_VARIABLE _err)
if(NOT _rc EQUAL 0)
  message(WARNING "torch-lora: could not read ${ADDON}'s libraries with ${OBJDUMP}: ${_err}")
elseif(_dyn MATCHES "NEEDED +(libtorch_cuda[^ \n]*)")
  message(STATUS "torch-lora: the addon links ${CMAKE_MATCH_1}: CUDA kernels are available where a GPU is")
else()
  message(FATAL_ERROR "torch-lora: the addon was built against a CUDA libtorch but does not link libtorch_cuda "
    "(the linker dropped it), so CUDA tensors would fail. Please report this with your compiler and linker versions.")
endif()
