// Dials an SSH server with a pinned host key exactly as @pulumi/command 1.2.1 configures golang.org/x/crypto/ssh
// (provider/pkg/provider/remote/connection.go, SSHConfig): ParseAuthorizedKey, FixedHostKey, and the key's type as the
// only host-key algorithm. Prints one line: "accepted" when the handshake got past the host key (authentication then
// fails: no credentials are offered), or "refused: <error>".
package main

import (
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: hostkeyprobe HOST:PORT 'TYPE BASE64'")
		os.Exit(2)
	}
	publicKey, _, _, _, err := ssh.ParseAuthorizedKey([]byte(os.Args[2]))
	if err != nil {
		fmt.Printf("unparsable: %v\n", err)
		return
	}
	config := &ssh.ClientConfig{
		User:              "probe",
		HostKeyCallback:   ssh.FixedHostKey(publicKey),
		HostKeyAlgorithms: []string{publicKey.Type()},
		Timeout:           10 * time.Second,
	}
	conn, err := net.DialTimeout("tcp", os.Args[1], 10*time.Second)
	if err != nil {
		fmt.Printf("unreachable: %v\n", err)
		return
	}
	_, _, _, err = ssh.NewClientConn(conn, os.Args[1], config)
	if err != nil && strings.Contains(err.Error(), "unable to authenticate") {
		fmt.Println("accepted")
		return
	}
	fmt.Printf("refused: %v\n", err)
}
