# cmake -DFILE=path -DSIZE=bytes -P check_size.cmake: fails unless FILE is exactly SIZE bytes.
file(SIZE ${FILE} actual)
if(NOT actual EQUAL SIZE)
  message(FATAL_ERROR "${FILE}: expected ${SIZE} bytes, found ${actual}")
endif()
