package geo

// #include <malloc.h>
// static void trim(void) {
// #ifdef __GLIBC__
//   malloc_trim(0);
// #endif
// }
import "C"

// TrimCHeap gives the pages the C heap holds free back to the system
// (glibc's malloc_trim). GEOS allocates with C malloc, which keeps what is
// freed in per-thread arenas; a long run of subdivisions on several
// threads otherwise grows the process by tens of megabytes a district.
func TrimCHeap() { C.trim() }
