# A CUDA libtorch without the CUDA toolkit's CMake dance.
#
# The addon compiles no CUDA code: it needs the CUDA runtime's headers (c10/cuda's headers include
# cuda_runtime_api.h) for its allocator statistics, and libtorch_cuda linked. Caffe2's public/cuda.cmake
# instead wants a complete toolkit (nvcc, FindCUDA, a test program), and when it is missing or elsewhere
# Caffe2Config.cmake stops configuring with a fatal error, so nothing after it could fall back. Here we
# find the runtime ourselves (an explicit CUDAToolkit_ROOT / CUDA_HOME / CUDA_PATH, the pip nvidia-*
# wheels beside a pip PyTorch, the folder of an nvcc on PATH, /usr/local/cuda) and define the targets
# cuda.cmake would define, which makes it return at its include guard. Without headers the addon is
# still built and linked to libtorch_cuda (CUDA tensors work); only the memory statistics answer 0.
#
#   tl_prepare_torch_cuda(<folder of TorchConfig.cmake>)   before find_package(Torch)
#   tl_finish_torch_cuda(<target>)                         after target_link_libraries
# set TL_TORCH_HAS_CUDA, TL_CUDA_INCLUDE_DIR, TL_CUDA_SUMMARY (the status line's words).

# Major version of a CUDA runtime's headers (cuda_runtime_api.h's CUDART_VERSION, e.g. 13000 -> 13).
function(_tl_cuda_header_major include_dir out)
  file(STRINGS "${include_dir}/cuda_runtime_api.h" _line REGEX "^#define CUDART_VERSION +[0-9]+" LIMIT_COUNT 1)
  if(_line MATCHES "CUDART_VERSION +([0-9]+)")
    math(EXPR _major "${CMAKE_MATCH_1} / 1000")
    set(${out} "${_major}" PARENT_SCOPE)
  else()
    set(${out} "" PARENT_SCOPE)
  endif()
endfunction()

macro(tl_prepare_torch_cuda _torch_cmake_dir)
  set(TL_TORCH_HAS_CUDA OFF)
  set(TL_CUDA_INCLUDE_DIR "")
  set(TL_CUDA_SUMMARY "no")
  get_filename_component(_tl_torch_prefix "${_torch_cmake_dir}/../../.." ABSOLUTE)
  set(_tl_caffe2_config "${_torch_cmake_dir}/../Caffe2/Caffe2Config.cmake")
  if(EXISTS "${_tl_caffe2_config}")
    file(STRINGS "${_tl_caffe2_config}" _tl_use_cuda REGEX "set\\(CAFFE2_USE_CUDA +(1|ON|TRUE)\\)")
    if(_tl_use_cuda)
      set(TL_TORCH_HAS_CUDA ON)
    endif()
  endif()
  if(TL_TORCH_HAS_CUDA)
    # The CUDA major version libtorch_cuda was linked against (its NEEDED libcudart.so.N), to pick headers
    # of the same version.
    set(_tl_torch_cuda_major "")
    find_program(_tl_objdump NAMES objdump)
    if(_tl_objdump AND EXISTS "${_tl_torch_prefix}/lib/libtorch_cuda.so")
      execute_process(COMMAND ${_tl_objdump} -p "${_tl_torch_prefix}/lib/libtorch_cuda.so"
                      OUTPUT_VARIABLE _tl_dyn ERROR_QUIET)
      if(_tl_dyn MATCHES "NEEDED +libcudart[^ \n]*\\.so\\.([0-9]+)")
        set(_tl_torch_cuda_major "${CMAKE_MATCH_1}")
      endif()
    endif()

    # Where a CUDA runtime may be: asked for, beside a pip PyTorch (nvidia-cuda-runtime / -nvcc wheels:
    # site-packages/nvidia/cu13 or nvidia/cuda_runtime), the folder above an nvcc on PATH, the usual ones.
    set(_tl_roots "")
    foreach(_v CUDAToolkit_ROOT CUDA_TOOLKIT_ROOT_DIR)
      if(${_v})
        list(APPEND _tl_roots "${${_v}}")
      endif()
    endforeach()
    foreach(_v CUDAToolkit_ROOT CUDA_HOME CUDA_PATH CUDA_ROOT)
      if(NOT "$ENV{${_v}}" STREQUAL "")
        list(APPEND _tl_roots "$ENV{${_v}}")
      endif()
    endforeach()
    file(GLOB _tl_wheels LIST_DIRECTORIES true "${_tl_torch_prefix}/../nvidia/cu[0-9]*"
         "${_tl_torch_prefix}/../nvidia/cuda_runtime" "${_tl_torch_prefix}/../nvidia/cuda_nvcc")
    list(APPEND _tl_roots ${_tl_wheels})
    find_program(_tl_nvcc nvcc)
    if(_tl_nvcc)
      get_filename_component(_tl_nvcc_real "${_tl_nvcc}" REALPATH)
      get_filename_component(_tl_nvcc_root "${_tl_nvcc_real}/../.." ABSOLUTE)
      list(APPEND _tl_roots "${_tl_nvcc_root}")
    endif()
    unset(_tl_nvcc CACHE)
    list(APPEND _tl_roots /usr/local/cuda /opt/cuda /usr)
    set(_tl_skipped "")
    foreach(_root ${_tl_roots})
      foreach(_inc "${_root}/include" "${_root}/targets/x86_64-linux/include" "${_root}/targets/sbsa-linux/include")
        if(NOT TL_CUDA_INCLUDE_DIR AND EXISTS "${_inc}/cuda_runtime_api.h")
          _tl_cuda_header_major("${_inc}" _tl_major)
          if(_tl_torch_cuda_major AND _tl_major AND NOT _tl_major STREQUAL _tl_torch_cuda_major)
            list(APPEND _tl_skipped "${_inc} (CUDA ${_tl_major})")
          else()
            get_filename_component(TL_CUDA_INCLUDE_DIR "${_inc}" ABSOLUTE)
            get_filename_component(_tl_cuda_root "${_inc}/.." ABSOLUTE)
          endif()
        endif()
      endforeach()
    endforeach()

    set(_tl_cudart "")
    if(TL_CUDA_INCLUDE_DIR)
      find_library(TL_CUDA_CUDART NAMES cudart libcudart.so.${_tl_torch_cuda_major}
                   PATHS "${_tl_cuda_root}" PATH_SUFFIXES lib64 lib lib/x64 NO_DEFAULT_PATH)
      if(TL_CUDA_CUDART)
        set(_tl_cudart "${TL_CUDA_CUDART}")
      endif()
    endif()

    # The targets Caffe2's cuda.cmake defines, defined here instead (torch::cudart with the runtime found,
    # the others empty: libtorch_cuda brings its own libraries at run time); cuda.cmake then returns at
    # its include guard, `if(TARGET torch::cudart)`.
    if(NOT TARGET torch::cudart)
      set(_tl_cuda_cmake "${_torch_cmake_dir}/../Caffe2/public/cuda.cmake")
      set(_tl_cuda_targets "torch::cudart")
      if(EXISTS "${_tl_cuda_cmake}")
        file(STRINGS "${_tl_cuda_cmake}" _tl_adds REGEX "add_library\\( *[A-Za-z0-9_]+::[A-Za-z0-9_]+")
        foreach(_l ${_tl_adds})
          if(_l MATCHES "add_library\\( *([A-Za-z0-9_]+::[A-Za-z0-9_]+)")
            list(APPEND _tl_cuda_targets "${CMAKE_MATCH_1}")
          endif()
        endforeach()
        list(REMOVE_DUPLICATES _tl_cuda_targets)
      endif()
      foreach(_t ${_tl_cuda_targets})
        if(NOT TARGET ${_t})
          add_library(${_t} INTERFACE IMPORTED)
        endif()
      endforeach()
      if(TL_CUDA_INCLUDE_DIR)
        set_property(TARGET torch::cudart PROPERTY INTERFACE_INCLUDE_DIRECTORIES "${TL_CUDA_INCLUDE_DIR}")
      endif()
      if(_tl_cudart)
        set_property(TARGET torch::cudart PROPERTY INTERFACE_LINK_LIBRARIES "${_tl_cudart}")
      endif()
    endif()
    set(CAFFE2_USE_CUDA ON)

    if(TL_CUDA_INCLUDE_DIR)
      set(TL_CUDA_SUMMARY "yes (CUDA runtime headers: ${TL_CUDA_INCLUDE_DIR})")
    else()
      string(CONCAT TL_CUDA_SUMMARY "yes, but no CUDA ${_tl_torch_cuda_major} runtime headers were found, so "
             "cuda.memoryAllocated() and the other memory statistics will answer 0 (CUDA tensors work). Give them "
             "with CUDAToolkit_ROOT=<toolkit> or pip install nvidia-cuda-runtime")
      if(_tl_skipped)
        string(APPEND TL_CUDA_SUMMARY "; skipped other versions: ${_tl_skipped}")
      endif()
    endif()
  endif()
endmacro()

function(tl_finish_torch_cuda _target)
  if(NOT TL_TORCH_HAS_CUDA)
    return()
  endif()
  # binding/cuda.cpp references a libtorch_cuda symbol so that linkers keep the library (nothing else
  # calls it by name: its kernels register themselves when it loads), as tch-rs does.
  target_compile_definitions(${_target} PRIVATE TL_TORCH_HAS_CUDA=1)
  if(TL_CUDA_INCLUDE_DIR)
    # The CUDA-only calls (allocator statistics) need the runtime's headers.
    target_compile_definitions(${_target} PRIVATE TL_WITH_CUDA=1)
    target_include_directories(${_target} PRIVATE "${TL_CUDA_INCLUDE_DIR}")
  endif()
  find_program(_tl_objdump NAMES objdump)
  if(_tl_objdump)
    add_custom_command(TARGET ${_target} POST_BUILD
      COMMAND ${CMAKE_COMMAND} -DADDON=$<TARGET_FILE:${_target}> -DOBJDUMP=${_tl_objdump}
              -P ${CMAKE_CURRENT_FUNCTION_LIST_DIR}/check-cuda-link.cmake
      VERBATIM)
  endif()
endfunction()
