"""hwprof.web"""
