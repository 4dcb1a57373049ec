package client

// MoveLogin moves the entry of host from to host to, replacing any entry to
// had, and reports whether from had one. `trustctl up` moves its stack's
// login so when the stack starts on other addresses: the old entry must not
// stay, since whatever listens there next would be sent its refresh token.
func (c *ConfigFile) MoveLogin(from, to string) bool {
	e, ok := c.auths[from]
	if !ok || from == to {
		return false
	}
	c.auths[to] = e
	delete(c.auths, from)
	return true
}
