"""hwprof.collectors"""
