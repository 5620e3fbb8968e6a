"""The version of flask-prodready, in a module of its own so that any part of the package
(the SARIF renderer, the remote client's User-Agent) can read it without importing the
package root, which imports everything."""

__version__ = "0.1.0"
