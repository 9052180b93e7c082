#include "core/test.h"
int main(void) { return 0; }
