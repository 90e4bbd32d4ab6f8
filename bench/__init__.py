"lottery_nb's benchmarks: `python bench/run.py` runs the sections of bench/sections/ and writes bench/README.md"
