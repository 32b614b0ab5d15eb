"""Connecting, read-only sessions, server capabilities, and local throwaway servers."""
