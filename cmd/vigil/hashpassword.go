package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

// stdin is where hash-password reads the password (tests replace it).
var stdin io.Reader = os.Stdin

// cmdHashPassword prints the bcrypt hash of the password on the first line of standard input,
// for a listener's auth.basic[].password_hash. The password is read from stdin, never taken as
// an argument, so that it stays out of shell history and the process list.
func cmdHashPassword(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		fmt.Fprintln(stderr, "vigil hash-password: takes no arguments; give the password on standard input")
		return 2
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && err != io.EOF {
		fmt.Fprintf(stderr, "vigil hash-password: %v\n", err)
		return 1
	}
	password := strings.TrimRight(line, "\r\n")
	if password == "" {
		fmt.Fprintln(stderr, "vigil hash-password: no password on standard input")
		return 1
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		fmt.Fprintf(stderr, "vigil hash-password: %v\n", err) // e.g. over bcrypt's 72 bytes
		return 1
	}
	fmt.Fprintln(stdout, string(h))
	return 0
}
