# Build-wide options and the helpers every folder uses to declare libraries, tests and fuzzers.

option(CLOISTER_SANITIZE "Build everything with AddressSanitizer + UndefinedBehaviorSanitizer" OFF)
option(CLOISTER_FUZZ "Build fuzz targets as libFuzzer binaries (requires clang)" OFF)
set(CLOISTER_VECTORS_DIR "${PROJECT_SOURCE_DIR}/../shared/vectors"
    CACHE PATH "Shared real-world test vectors (overridden at run time by $CLOISTER_VECTORS)")

# Release builds use -O2: GCC 12 at -O3 reports false -Wrestrict and -Wstringop-overread
# findings inside std::string and std::vector (e.g. GCC bug 105651), and the hot paths (hashing,
# signatures) are in OpenSSL anyway.
foreach(lang C CXX)
  string(REPLACE "-O3" "-O2" CMAKE_${lang}_FLAGS_RELEASE "${CMAKE_${lang}_FLAGS_RELEASE}")
endforeach()

set(CMAKE_CXX_STANDARD 20)
set(CMAKE_CXX_STANDARD_REQUIRED ON)
set(CMAKE_CXX_EXTENSIONS OFF)
set(CMAKE_POSITION_INDEPENDENT_CODE ON)
set(CMAKE_EXPORT_COMPILE_COMMANDS ON)

add_compile_options(
  -Wall -Wextra -Wpedantic -Werror -Wshadow -Wformat=2 -Wimplicit-fallthrough
  -Wmissing-declarations $<$<COMPILE_LANGUAGE:CXX>:-Wnon-virtual-dtor>)


if(CLOISTER_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-sanitize-recover=all
                      -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
endif()

if(CLOISTER_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "CLOISTER_FUZZ=ON needs clang: configure with -DCMAKE_CXX_COMPILER=clang++")
  endif()
  # Instrument every library for coverage; only fuzz targets link the libFuzzer main.
  add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
endif()

# Consumers of an instrumented library (including the installed package) must link the
# sanitizer runtimes too.
function(cloister_propagate_sanitizers name)
  if(CLOISTER_SANITIZE)
    target_link_options(${name} INTERFACE -fsanitize=address,undefined)
  endif()
endfunction()

# cloister_command(<target>)
# A short-lived command-line tool (verify-report, cloister-measure, cloister-vmm), each with a
# start-up budget of a few milliseconds: it links only the shared libraries it uses, and the C++
# runtime statically, which spares the dynamic loader most of its symbol resolution at every
# start. Instrumented builds keep the C++ runtime shared, next to the sanitizer runtimes.
function(cloister_command name)
  target_link_options(${name} PRIVATE -Wl,--as-needed)
  if(NOT CLOISTER_SANITIZE AND NOT CLOISTER_FUZZ)
    target_link_options(${name} PRIVATE -static-libstdc++ -static-libgcc)
  endif()
endfunction()

# cloister_library(NAME <target> SOURCES <files>... [DEPS <libs>...] [PRIVATE_DEPS <libs>...]
#                  [INSTALL])
# A folder library: public headers in include/, private sources in src/. INSTALL adds the
# library and its headers to the exported `cloister` CMake package.
function(cloister_library name)
  cmake_parse_arguments(ARG "INSTALL" "" "SOURCES;DEPS;PRIVATE_DEPS" ${ARGN})
  add_library(${name} ${ARG_SOURCES})
  add_library(cloister::${name} ALIAS ${name})
  target_include_directories(
    ${name} PUBLIC $<BUILD_INTERFACE:${CMAKE_CURRENT_SOURCE_DIR}/include>
                   $<INSTALL_INTERFACE:include>)
  target_link_libraries(${name} PUBLIC ${ARG_DEPS} PRIVATE ${ARG_PRIVATE_DEPS})
  set_target_properties(${name} PROPERTIES OUTPUT_NAME cloister_${name} EXPORT_NAME ${name})
  cloister_propagate_sanitizers(${name})
  if(ARG_INSTALL)
    install(TARGETS ${name} EXPORT cloisterTargets ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
    install(DIRECTORY include/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
  endif()
endfunction()

# cloister_test(NAME <target> SOURCES <files>... DEPS <libs>... [LABELS <labels>...])
# A GoogleTest binary registered with CTest, one CTest entry per test case.
function(cloister_test name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS;LABELS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} cloister_test_support GTest::gtest_main
                                        GTest::gmock)
  set(props ENVIRONMENT "CLOISTER_VECTORS_DEFAULT=${CLOISTER_VECTORS_DIR}")
  if(ARG_LABELS)
    list(APPEND props LABELS "${ARG_LABELS}")
  endif()
  gtest_discover_tests(${name} DISCOVERY_TIMEOUT 60 PROPERTIES ${props})
endfunction()

# cloister_fuzzer(NAME <target> SOURCES <files>... DEPS <libs>... CORPUS <dirs or files>...)
# With CLOISTER_FUZZ a libFuzzer binary; otherwise the same entry point linked with a driver that
# replays inputs. Either way CTest runs it over its seed corpus (committed seeds plus, where the
# shared vectors are present, real inputs).
function(cloister_fuzzer name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS;CORPUS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/tests)
  target_link_libraries(${name} PRIVATE ${ARG_DEPS})
  if(CLOISTER_FUZZ)
    target_link_options(${name} PRIVATE -fsanitize=fuzzer)
  else()
    target_link_libraries(${name} PRIVATE cloister_fuzz_replay)
  endif()
  add_test(NAME fuzz.${name}.corpus
           COMMAND ${CMAKE_COMMAND} -E env "CLOISTER_VECTORS_DEFAULT=${CLOISTER_VECTORS_DIR}"
                   ${PROJECT_SOURCE_DIR}/tests/fuzz/run-corpus.sh $<TARGET_FILE:${name}>
                   ${ARG_CORPUS})
  set_tests_properties(fuzz.${name}.corpus PROPERTIES LABELS fuzz)
  # One line per target for scripts/fuzz-campaign.sh: name, binary, seed corpus specs.
  list(JOIN ARG_CORPUS " " corpus)
  set_property(GLOBAL APPEND PROPERTY CLOISTER_FUZZERS
                                      "${name} $<TARGET_FILE:${name}> ${corpus}")
endfunction()

# Writes BUILD/fuzz-targets.txt from every cloister_fuzzer(); call once, after all folders.
function(cloister_write_fuzz_manifest)
  get_property(fuzzers GLOBAL PROPERTY CLOISTER_FUZZERS)
  list(JOIN fuzzers "\n" content)
  file(GENERATE OUTPUT ${CMAKE_BINARY_DIR}/fuzz-targets.txt CONTENT "${content}\n")
endfunction()
