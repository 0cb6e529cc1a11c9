// Command broken does not compile: the negative control of testbin's tests.
package main

func main() { undefinedCall() }
