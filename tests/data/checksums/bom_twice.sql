﻿create table two_boms (id int);
